// English: every key the page uses. Other catalogs must have exactly these keys (a test checks).
export default {
  'moderation.videoHidden': 'Your video is hidden from your partner: our automatic check found nudity, which the rules forbid. Repeated violations lead to a ban.',
  'moderation.videoHiddenNoFace': 'Your video is hidden from your partner because your face is not in view. Show your face to be seen again.',
  'moderation.videoShown': 'Your partner can see you again.',
  'moderation.partnerHiddenTitle': 'Video hidden',
  'moderation.partnerHidden': 'Automatic moderation hid your partner\'s video. Press Next to meet someone else.',
  'moderation.partnerHiddenNoFace': 'Your partner\'s face is not in view, so their video is hidden. Press Next to meet someone else.',
  'moderation.cameraRetry': 'Turn camera on',
  'moderation.cameraRequired': 'Turn your camera on to be matched: everyone here shows themselves. You will be matched as soon as your video reaches us.',
};
